"""Reports pipeline (UC6, UC7): gather (the analytics and ML routes' own answers) → render (PDF or Excel) →
store (EXPORT_DIR) → follow and download. `pipeline.py` holds the stages in order."""
