"""CloudTune tests (a package so that tests can import shared helpers such as tests.datafiles)."""
