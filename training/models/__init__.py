"""Probabilistic models, selected by ``model.type``; their config keys and classes are declared in args.py."""
