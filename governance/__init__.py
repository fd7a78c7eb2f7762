"""The centre: purposes, legal routes, authorisations, the design hash, the gate and jobs."""

# Every governance code is in the catalogue whichever of the package's modules is imported first.
from governance import messages as _messages  # noqa: F401
