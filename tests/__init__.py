"""Tests of the template itself: render it with copier and check what comes out."""
