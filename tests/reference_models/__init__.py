"""Published repositories' own model definitions, copied from their files and reduced to what builds the model.

They share no code with :mod:`core.models`, so a checkpoint they save, loaded through :mod:`core.checkpoints`,
computing their outputs is an independent check of NormScope's layouts.
"""
