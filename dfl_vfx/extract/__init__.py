"""Face extraction: plate sequence -> aligned faceset (detect, track, smooth, align, write) and contact sheets."""
