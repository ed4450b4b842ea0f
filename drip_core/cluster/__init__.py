"""Batch matting of whole folders ("catalogues"), on this machine or on a Ray cluster.

One concept per module:
  * ``storage``  - local folders or URIs that pyarrow reads (s3://, gs://, file://);
  * ``atomic``   - outputs appear under their final name only when complete;
  * ``jobs``     - the job list (pairing images with trimaps/masks, skipping complete outputs),
                   loading one job's inputs and matting it;
  * ``report``   - OUTPUT/report.json and the summary line;
  * ``progress`` - the tqdm progress bar shared by the local and the Ray batch;
  * ``ray_runner`` - the Ray driver: CPU tasks for the classical engine, model-holding actors
                   (one GPU each, CPU where a cluster has none) for DRIP.

Nothing here imports Ray at module level: the local batch uses this package without the
``cluster`` extra installed.
"""
