"""The web page: static HTML/CSS/JS served by the app itself (no CDN, works offline)."""
