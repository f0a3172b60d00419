// Intentionally empty: kernels live in the .c files of this target.
