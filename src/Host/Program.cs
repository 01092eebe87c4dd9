Console.WriteLine("migration");
