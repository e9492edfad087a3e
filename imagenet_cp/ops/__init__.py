"""JAX image primitives shared by corruptions and perturbations."""
