"""名寄せ jobs: source extracts, Japanese normalisation, matching."""
