"""The method's mathematics: the Hessian Penalty and its exact references, orthonormal
directions (Gram-Schmidt), Adam on the manifold, the curvature warm start, sweeps along a
direction. Depends on torch only: no files, no generators, no settings."""
