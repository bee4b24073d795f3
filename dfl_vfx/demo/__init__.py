"""The embedded demo shot (built offline from public-domain photos shipped in installed packages)."""
