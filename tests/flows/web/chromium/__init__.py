"""The web app's pages as a person sees them: headless Chromium, screenshots kept."""
