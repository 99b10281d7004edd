"""One router per resource: psf, models, health."""
