ALTER TABLE "blobs" ALTER COLUMN "thumbnail_status" SET DEFAULT 'pending';--> statement-breakpoint
ALTER TABLE "assets" ALTER COLUMN "thumbnail_status" SET DEFAULT 'pending';--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "taken_at_zone" text;--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "make" text;--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "model" text;--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "latitude" double precision;--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "longitude" double precision;--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "altitude" double precision;--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "duration_ms" integer;--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "video_codec" text;--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "taken_at_zone" text;--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "make" text;--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "model" text;--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "latitude" double precision;--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "longitude" double precision;--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "altitude" double precision;--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "duration_ms" integer;--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "video_codec" text;--> statement-breakpoint
-- 'none' (not described yet) is now 'pending': background processing will describe them.
UPDATE "blobs" SET "thumbnail_status" = 'pending' WHERE "thumbnail_status" = 'none';--> statement-breakpoint
UPDATE "assets" SET "thumbnail_status" = 'pending' WHERE "thumbnail_status" = 'none';
