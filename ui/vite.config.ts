import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

// Served by the hotline binary under /app/ (host/http/dashboard.rs): asset
// names carry content hashes, and the same sources always build the same
// bytes (.ci/run rebuilds ui/dist and fails when it differs from the commit).
export default defineConfig({
  base: "/app/",
  plugins: [react(), tailwindcss()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    // One script and one stylesheet: index.html names every asset.
    cssCodeSplit: false,
    modulePreload: { polyfill: false },
  },
  server: {
    // `npm run dev` against a hotline on :8080.
    proxy: { "/api": "http://127.0.0.1:8080", "/admin": "http://127.0.0.1:8080" },
  },
});
