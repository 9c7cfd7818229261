"""The local backend: KerasTuner in worker processes on this machine."""
