"""One router per resource: psf (single and grid), batch, interpolate, latent, models, metrics, health."""
