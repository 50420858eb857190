"""Declarations of the TrajFM tables the pipeline stores besides findings, clusters, taxonomy and distribution."""

from aob_pipeline.lib.warehouse.schema import Column, Table

FAILURE_EMBEDDINGS_TABLE = Table(
    "failure_embeddings",
    "One embedding (all-MiniLM-L6-v2, 384 dimensions, unit length) per distinct failure text.",
    (
        Column("text", "VARCHAR", "The failure text: additional mode title and description.", False),
        Column("embedding", "FLOAT[384]", "Sentence embedding of the text.", False),
        Column("occurrences", "BIGINT", "How many additional-mode findings carry this text.", False),
    ),
    key=("text",),
)
FAILURE_CLUSTER_MEMBERS_TABLE = Table(
    "failure_cluster_members",
    "Which cluster each additional-mode finding fell in, with its 2-D map position (internal: holds trace text).",
    (
        Column("run_id", "VARCHAR", "Run of the finding.", False),
        Column("agent_id", "VARCHAR", "Agent of the run."),
        Column("extractor", "VARCHAR", "Extractor that found it."),
        Column("title", "VARCHAR", "Title of the additional failure mode."),
        Column("text", "VARCHAR", "Title and description that were embedded."),
        Column("cluster_id", "INTEGER", "Cluster (−1: noise).", False),
        Column("map_x", "DOUBLE", "2-D map coordinate."),
        Column("map_y", "DOUBLE", "2-D map coordinate."),
    ),
)
