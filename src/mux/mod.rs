//! NRI's connection multiplexer.
