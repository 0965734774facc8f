ALTER TABLE "users" ADD COLUMN "used_bytes" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Existing libraries start from what they hold.
UPDATE "users" SET "used_bytes" = coalesce((SELECT sum("size") FROM "assets" WHERE "assets"."user_id" = "users"."id"), 0);
