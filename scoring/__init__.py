"""Risk alert and score jobs: features, rules, models, explanations, evaluation."""
