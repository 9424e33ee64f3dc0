"""The ``xinfang`` command: a thin shell over the Python API."""
