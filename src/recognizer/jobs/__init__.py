"""Folder jobs: many files in, one results file out, resumable (see :mod:`recognizer.jobs.runner`)."""
