"""Data-parallel training over MPI: `mpiexec -n N cnnc run SPEC` (see docs/scaling.md)."""
