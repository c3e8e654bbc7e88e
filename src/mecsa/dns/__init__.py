"""DNS: one resolver layer that keeps "could not find out" apart from "not there"."""
