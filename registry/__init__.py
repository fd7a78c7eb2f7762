"""個人情報ファイル and ファイル簿 entries with their 記録項目 (data items)."""
