"""Batch scoring of Parquet dumps: plan (`planning`), read (`reading`), score (`scoring`), write
(`writing`), the pipeline that joins them (`pipeline`) and the summary of a run (`summary`)."""
