//! WebSocket URLs given directly.
