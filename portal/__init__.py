"""Resident pages and requests (開示・訂正・利用停止) with their staff handling."""
