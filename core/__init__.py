"""The kernel: settings, database, organisation, auth, audit chain, crypto, documents, Reason."""
