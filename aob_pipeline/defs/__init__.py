"""The Dagster code location's domains, one folder each, found by ``dg.load_from_defs_folder`` (see
``aob_pipeline/definitions.py``): each module defines its assets, checks, jobs, schedules and sensors at module
level. ``resources.py`` binds the resources; ``partitions.py`` and ``metadata_images.py`` are helpers that
define no Dagster objects."""
