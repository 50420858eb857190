"""Pure library code for aob_pipeline: no Dagster imports here, so everything is testable on its own."""
