"""The HTTP service: ``lumbar serve`` (see :mod:`lumbar.service.app`)."""
