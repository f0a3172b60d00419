#pragma once
#include <cblas.h>
// OpenBLAS extensions (declared in OpenBLAS's cblas.h as well).
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);
char *openblas_get_config(void);

#include <stddef.h>
// LAPACK (OpenBLAS ships it; Debian installs no lapack.h). Fortran calling convention: every
// argument by reference, then the hidden lengths of the character arguments.
void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a, const int *lda,
             const double *vl, const double *vu, const int *il, const int *iu, const double *abstol,
             int *m, double *w, double *z, const int *ldz, int *isuppz, double *work, const int *lwork,
             int *iwork, const int *liwork, int *info, size_t jobz_len, size_t range_len, size_t uplo_len);
