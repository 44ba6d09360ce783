//! Controllers that act on stored objects.
