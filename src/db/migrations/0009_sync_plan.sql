CREATE SEQUENCE "public"."sync_versions" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
CREATE TABLE "folder_syncs" (
	"folder_id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"run" bigint DEFAULT nextval('sync_versions') NOT NULL,
	"started_at" timestamp with time zone DEFAULT date_trunc('milliseconds', now()) NOT NULL,
	"updated_at" timestamp with time zone DEFAULT date_trunc('milliseconds', now()) NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sync_files" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "sync_files_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"folder_id" uuid NOT NULL,
	"sha256" text NOT NULL,
	"name" text NOT NULL,
	"size" bigint NOT NULL,
	"state" text NOT NULL,
	"bytes_done" bigint DEFAULT 0 NOT NULL,
	"upload_id" uuid,
	"asset_id" uuid,
	"error_code" text,
	"error_message" text,
	"version" bigint DEFAULT nextval('sync_versions') NOT NULL,
	"updated_at" timestamp with time zone DEFAULT date_trunc('milliseconds', now()) NOT NULL
);
--> statement-breakpoint
ALTER TABLE "uploads" ADD COLUMN "failure_code" text;--> statement-breakpoint
ALTER TABLE "uploads" ADD COLUMN "version" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "folder_syncs" ADD CONSTRAINT "folder_syncs_folder_id_folders_id_fk" FOREIGN KEY ("folder_id") REFERENCES "public"."folders"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "folder_syncs" ADD CONSTRAINT "folder_syncs_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sync_files" ADD CONSTRAINT "sync_files_folder_id_folder_syncs_folder_id_fk" FOREIGN KEY ("folder_id") REFERENCES "public"."folder_syncs"("folder_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sync_files" ADD CONSTRAINT "sync_files_upload_id_uploads_id_fk" FOREIGN KEY ("upload_id") REFERENCES "public"."uploads"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sync_files" ADD CONSTRAINT "sync_files_asset_id_assets_id_fk" FOREIGN KEY ("asset_id") REFERENCES "public"."assets"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "folder_syncs_user_idx" ON "folder_syncs" USING btree ("user_id","updated_at");--> statement-breakpoint
CREATE UNIQUE INDEX "sync_files_folder_sha256_key" ON "sync_files" USING btree ("folder_id","sha256");--> statement-breakpoint
CREATE INDEX "sync_files_upload_idx" ON "sync_files" USING btree ("upload_id") WHERE "sync_files"."upload_id" is not null;--> statement-breakpoint
CREATE INDEX "sync_files_folder_version_idx" ON "sync_files" USING btree ("folder_id","version");