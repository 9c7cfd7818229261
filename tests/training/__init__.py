"""Tests of core/training/: what trains a trial: datasets, the CNN, the cloud trainer."""
