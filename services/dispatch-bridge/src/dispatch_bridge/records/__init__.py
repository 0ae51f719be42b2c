"""Records: legal holds, evidence (custody and signed exports) and retention of the bridge's copies."""
