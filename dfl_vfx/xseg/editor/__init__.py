"""The XSeg label editor: a local web page (served on 127.0.0.1 with a token) to draw label polygons on faces."""
