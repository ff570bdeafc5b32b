/** Creates `vhost` on the broker behind `baseUrl` (rabbitmq-vhost.mjs). */
export declare function createVhost(
  baseUrl: string,
  vhost: string,
): { error: string } | { error?: undefined; url: string; dispose(): string | undefined }
