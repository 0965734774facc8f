CREATE TABLE "share_items" (
	"share_id" uuid NOT NULL,
	"asset_id" uuid,
	"folder_id" uuid,
	CONSTRAINT "share_items_one_kind" CHECK (("share_items"."asset_id" is null) <> ("share_items"."folder_id" is null))
);
--> statement-breakpoint
CREATE TABLE "share_recipients" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"share_id" uuid NOT NULL,
	"user_id" uuid,
	"email" text NOT NULL,
	"via" text NOT NULL,
	"token_hash" "bytea" NOT NULL,
	"mail_status" text DEFAULT 'queued' NOT NULL,
	"mail_sent_at" timestamp with time zone,
	"mail_error" text,
	"first_opened_at" timestamp with time zone,
	"last_opened_at" timestamp with time zone,
	"opens" integer DEFAULT 0 NOT NULL,
	"downloads" integer DEFAULT 0 NOT NULL,
	"revoked_at" timestamp with time zone,
	"reminded_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT date_trunc('milliseconds', now()) NOT NULL,
	CONSTRAINT "share_recipients_via_check" CHECK ("share_recipients"."via" in ('friend', 'group', 'email'))
);
--> statement-breakpoint
CREATE TABLE "shares" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"owner_id" uuid NOT NULL,
	"title" text NOT NULL,
	"message" text,
	"allow_originals" boolean NOT NULL,
	"edit_rule" jsonb NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT date_trunc('milliseconds', now()) NOT NULL,
	"revoked_at" timestamp with time zone,
	"reminded_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "folders" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "share_items" ADD CONSTRAINT "share_items_share_id_shares_id_fk" FOREIGN KEY ("share_id") REFERENCES "public"."shares"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "share_items" ADD CONSTRAINT "share_items_asset_id_assets_id_fk" FOREIGN KEY ("asset_id") REFERENCES "public"."assets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "share_items" ADD CONSTRAINT "share_items_folder_id_folders_id_fk" FOREIGN KEY ("folder_id") REFERENCES "public"."folders"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "share_recipients" ADD CONSTRAINT "share_recipients_share_id_shares_id_fk" FOREIGN KEY ("share_id") REFERENCES "public"."shares"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "share_recipients" ADD CONSTRAINT "share_recipients_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shares" ADD CONSTRAINT "shares_owner_id_users_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "share_items_asset_key" ON "share_items" USING btree ("share_id","asset_id") WHERE "share_items"."asset_id" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "share_items_folder_key" ON "share_items" USING btree ("share_id","folder_id") WHERE "share_items"."folder_id" is not null;--> statement-breakpoint
CREATE INDEX "share_items_asset_idx" ON "share_items" USING btree ("asset_id");--> statement-breakpoint
CREATE INDEX "share_items_folder_idx" ON "share_items" USING btree ("folder_id");--> statement-breakpoint
CREATE UNIQUE INDEX "share_recipients_token_key" ON "share_recipients" USING btree ("token_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "share_recipients_email_key" ON "share_recipients" USING btree ("share_id","email");--> statement-breakpoint
CREATE INDEX "share_recipients_user_idx" ON "share_recipients" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE INDEX "shares_owner_idx" ON "shares" USING btree ("owner_id","created_at");--> statement-breakpoint
CREATE INDEX "shares_expires_idx" ON "shares" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "assets_expires_idx" ON "assets" USING btree ("expires_at") WHERE "assets"."expires_at" is not null;--> statement-breakpoint
CREATE INDEX "folders_expires_idx" ON "folders" USING btree ("expires_at") WHERE "folders"."expires_at" is not null;