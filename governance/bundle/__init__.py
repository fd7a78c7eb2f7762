"""Privacy-as-code bundles: organisation, register and legal footing as one YAML file."""
