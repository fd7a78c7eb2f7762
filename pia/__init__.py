"""Privacy impact assessments: threshold, risks, measures, approval, review, report."""
