/** SMTP through nodemailer. Credentials come from Vault KV (<prefix>/smtp) and are re-read when
 * the server rejects them, so a rotated SMTP password needs no restart. */
import nodemailer, { Transporter } from 'nodemailer';
import { DependencyError } from './errors';
import { instrument } from './metrics';
import type { VaultClient } from './vault';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** A stable Message-ID lets a receiver drop a duplicate should one ever slip through. */
  messageId?: string;
}

export interface MailerConfig {
  SMTP_HOST: string;
  SMTP_PORT: number;
  SMTP_SECURE: boolean;
  /** Plain-port relay: upgrade with STARTTLS or fail the send (never send in clear). */
  SMTP_REQUIRE_TLS?: boolean;
  MAIL_FROM: string;
}

export class Mailer {
  private transport: Transporter | undefined;

  constructor(
    private readonly c: MailerConfig,
    private readonly vault: VaultClient,
  ) {}

  private async getTransport(): Promise<Transporter> {
    if (this.transport) return this.transport;
    const creds = await this.vault.kvGet<{ username?: string; password?: string }>('smtp');
    this.transport = nodemailer.createTransport({
      host: this.c.SMTP_HOST,
      port: this.c.SMTP_PORT,
      secure: this.c.SMTP_SECURE,
      // SMTP_REQUIRE_TLS: a relay that offers no STARTTLS fails the send before MAIL FROM.
      // Otherwise (the local maildev) STARTTLS is not attempted.
      requireTLS: !this.c.SMTP_SECURE && this.c.SMTP_REQUIRE_TLS === true,
      ignoreTLS: !this.c.SMTP_SECURE && this.c.SMTP_REQUIRE_TLS !== true,
      auth: creds?.username ? { user: creds.username, pass: creds.password ?? '' } : undefined,
      connectionTimeout: 5000,
      greetingTimeout: 5000,
      socketTimeout: 10000,
    });
    return this.transport;
  }

  async send(msg: MailMessage): Promise<string> {
    const transport = await this.getTransport();
    try {
      const info: { messageId: string } = await instrument('smtp', 'send', (): Promise<{ messageId: string }> =>
        transport.sendMail({ from: this.c.MAIL_FROM, to: msg.to, subject: msg.subject, text: msg.text, html: msg.html, messageId: msg.messageId }),
      );
      return info.messageId;
    } catch (err) {
      const e = err as { responseCode?: number; code?: string };
      if (e.code === 'EAUTH' || e.responseCode === 535) this.transport = undefined; // re-read creds next time
      // No STARTTLS under SMTP_REQUIRE_TLS (ETLS, whatever the relay answered to STARTTLS): the
      // relay's configuration, not the message, so retried like an outage, never sent in clear.
      if (e.code !== 'ETLS' && e.responseCode && e.responseCode >= 500 && e.responseCode !== 535) throw err; // permanent
      throw new DependencyError('smtp', err);
    }
  }

  close() {
    this.transport?.close();
    this.transport = undefined;
  }
}
