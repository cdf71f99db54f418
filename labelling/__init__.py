"""A review queue for people to label posts (issue #14).

``sentiment-sample`` (`cli.main`) picks posts to label from Parquet dumps, a batch run's scored
output or a stream's JSON-lines files (`sources`, `sampling`) and writes them as JSON lines or as
Label Studio tasks with the model's predictions (`formats`); ``sentiment-labels``
(`cli.labels_main`) turns the labelled file, or a Label Studio or Argilla export, into JSON lines
that ``sentiment-train --dataset`` reads.
"""
