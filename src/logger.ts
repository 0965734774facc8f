/** Where the server writes what happens: the console in `npm start`, a quiet or capturing one in tests. */
export interface Logger {
  info(message: string): void;
  error(message: string, error?: unknown): void;
}
