"""The centre: purposes, legal routes, authorisations, the design hash, the gate and jobs."""
