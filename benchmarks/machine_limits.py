"""Physical limits of this machine for making PSFs: memory bandwidth (each PSF is k*k*4 bytes written)
and float32 matmul rate (each surrogate PSF costs the FLOPs of its graph's MatMul/Gemm/Conv nodes).

Both are measured here with numpy, so every throughput can be stated as a fraction of a limit. A limit
is the best of its timed runs (as STREAM reports), not the median: it is what the machine can do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .timing import throughput


def memory_bandwidth(mib: int, repeats: int) -> dict:
    """numpy copy of a large float32 array; bytes read + written per second (the STREAM convention)."""
    src = np.ones(mib * 2**20 // 4, dtype=np.float32)
    dst = np.empty_like(src)
    timing = throughput(lambda: np.copyto(dst, src), 1, repeats=repeats)
    return {"bytes_per_s": 2 * src.nbytes * timing["best_psfs_per_s"], "array_mib": mib, "repeats": repeats,
            "how": "np.copyto of a float32 array, (read + write bytes) / best time; numpy copies on one thread"}


def matmul_rate(n: int, repeats: int) -> dict:
    """float32 n x n matmul, 2 n^3 FLOPs per product, through numpy's BLAS and torch's (the faster counts:
    a limit must not sit below what a method here reaches)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    rates = {"numpy": 2 * n**3 * throughput(lambda: np.matmul(a, b, out=out), 1, repeats=repeats,
                                            min_time_s=0.2)["best_psfs_per_s"]}
    try:
        import torch
    except ImportError:
        pass
    else:
        ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
        rates["torch"] = 2 * n**3 * throughput(lambda: torch.matmul(ta, tb, out=tout), 1, repeats=repeats,
                                               min_time_s=0.2)["best_psfs_per_s"]
    return {"flops_per_s": max(rates.values()), "by_library": rates, "n": n, "repeats": repeats,
            "how": "float32 n x n matmul, 2 n^3 / best time, numpy and torch with this run's thread setting; "
                   "the faster"}


def _dims(value_info) -> list[int]:
    # symbolic (batch) dimensions count as 1: FLOPs are per PSF
    return [d.dim_value if d.HasField("dim_value") else 1 for d in value_info.type.tensor_type.shape.dim]


def onnx_flops(path: Path) -> dict:
    """FLOPs per batch row of an ONNX graph, counting MatMul, Gemm, Conv and ConvTranspose (2 per MAC)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(path)))
    g = model.graph
    shapes = {vi.name: _dims(vi) for vi in [*g.input, *g.output, *g.value_info]}
    shapes.update({t.name: list(numpy_helper.to_array(t).shape) for t in g.initializer})
    by_op: dict[str, int] = {}
    for node in g.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type in ("MatMul", "Gemm"):
            # K and N from the weight: inferred activation shapes can lose a dimension to the symbolic batch
            a, b = shapes[node.input[0]], shapes[node.input[1]]
            if node.op_type == "Gemm":
                m = a[1] if attrs.get("transA", 0) else a[0]
                k, n = (b[1], b[0]) if attrs.get("transB", 0) else (b[0], b[1])
            else:  # [..., M, K] @ [..., K, N]
                m, k, n = int(np.prod(a[:-1])), b[-2], b[-1]
            flops = 2 * m * k * n
        elif node.op_type in ("Conv", "ConvTranspose"):
            w, out = shapes[node.input[1]], shapes[node.output[0]]
            if node.op_type == "Conv":  # w [Cout, Cin/group, kh, kw]; every output value costs Cin/g*kh*kw MACs
                flops = 2 * int(np.prod(out)) * int(np.prod(w[1:]))
            else:  # w [Cin, Cout/group, kh, kw]; every input value scatters Cout/g*kh*kw MACs
                flops = 2 * int(np.prod(shapes[node.input[0]])) * int(np.prod(w[1:]))
        else:
            continue
        by_op[node.op_type] = by_op.get(node.op_type, 0) + flops
    return {"flops_per_psf": sum(by_op.values()), "by_op": by_op, "graph": Path(path).name,
            "counted": "MatMul/Gemm/Conv/ConvTranspose, 2 FLOPs per multiply-add; elementwise ops not counted"}


def fractions(row: dict, limits: dict, flops_per_psf: float | None) -> dict:
    """This row's PSFs/s as a fraction of the write-bandwidth and compute limits."""
    bytes_per_psf = 4 * row["ks"] ** 2  # the float32 kernels the timed call wrote
    bw_limit = limits["memory"]["bytes_per_s"] / bytes_per_psf
    out = {"bytes_written_per_psf": bytes_per_psf, "bandwidth_limit_psfs_per_s": bw_limit,
           "fraction_of_bandwidth_limit": row["psfs_per_s"] / bw_limit}
    if flops_per_psf:
        compute_limit = limits["matmul"]["flops_per_s"] / flops_per_psf
        out.update({"flops_per_psf": flops_per_psf, "compute_limit_psfs_per_s": compute_limit,
                    "fraction_of_compute_limit": row["psfs_per_s"] / compute_limit})
    return out


def annotate(rows: list[dict], limits: dict) -> None:
    """Give every measured row its fractions of the limits (our graph's FLOPs for our rows)."""
    ours = limits["flops"]["psf.onnx"]["flops_per_psf"]
    for row in rows:
        if row.get("available") is False:  # a route this build lacks: no figure to compare
            continue
        flops = row.get("flops_per_psf_graph") or (ours if row["kind"].startswith("ours") else None)
        row["limits"] = fractions(row, limits, flops)


def measure(mib: int, matmul_n: int, repeats: int) -> dict:
    return {"memory": memory_bandwidth(mib, repeats), "matmul": matmul_rate(matmul_n, repeats)}
