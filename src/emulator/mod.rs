//! An HTTP emulator of the Zendesk Help Center API (work in progress).
