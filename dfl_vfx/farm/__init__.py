"""Farm submission: a shot file (:mod:`.shot`), one job model (:mod:`.job`) and one module per farm engine."""
