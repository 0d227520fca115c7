"""Differential testing of the query paths (store, matcher, percolation) against each other and Lucene."""
