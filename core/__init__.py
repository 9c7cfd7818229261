"""CloudTune's domain: study specs, datasets, the CNN, the store, backends, statistics."""

__version__ = "0.1.0"
